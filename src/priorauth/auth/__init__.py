"""SMART Backend Services: registered clients, signed-assertion token exchange, scoped access."""
