"""Small threaded fakes of outside services, bound to 127.0.0.1 only."""
