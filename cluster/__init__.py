"""beamlet.cluster."""
