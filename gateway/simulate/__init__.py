"""`corral simulate`: replay a request trace through the real router and dispatch loop
against simulated backends in virtual time, to compare policies before rollout."""
