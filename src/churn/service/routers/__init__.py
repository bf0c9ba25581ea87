"""The service's endpoints, one router per concern: `scoring` and `ops`."""
