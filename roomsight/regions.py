"""The listing regions roomsight ships with: those of the shipped plan (rollout/plans/default.yaml, which
a test holds to this list), of the synthetic photos and of the traffic the demo, tests and benchmarks
generate. A deployment's own regions are its plan's `regions`; nothing routes by this list."""

REGIONS: tuple[str, ...] = ("eu-west", "us-east", "ap-south")
