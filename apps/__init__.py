"""beamlet.apps."""
