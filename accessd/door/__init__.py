"""The door: the pure door machine and the component that drives relay and inputs."""
