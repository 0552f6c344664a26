"""DTR 2.0.1 conformance: the davinci-dtr-test-kit payer-server checks and the DTR profiles."""
