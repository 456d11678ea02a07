"""The data platform side: orgs, users and sign-in; companies, contacts and intent signals."""
