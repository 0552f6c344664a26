"""Da Vinci DTR: forms generated from the policies, pre-filled and judged by the engine."""
