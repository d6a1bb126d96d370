"""Peer baselines (implicit ALS and BPR, LightFM) behind one adapter protocol; pure code, no dagster import."""
