"""beamlet.supervisors."""
