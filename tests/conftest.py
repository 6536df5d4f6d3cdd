"""Test-wide settings: one torch thread (the networks here are tiny; more threads only spin)."""

import os

import torch

os.environ.setdefault("OMP_NUM_THREADS", "1")  # inherited by train.py subprocesses
torch.set_num_threads(1)
