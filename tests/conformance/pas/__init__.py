"""Da Vinci PAS conformance: davinci-pas-test-kit, subscriptions-test-kit and the PAS 2.2.1 IG."""
