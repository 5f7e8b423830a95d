"""Run the detection pipeline offline over recorded events and compare its alerts with a ground truth."""
