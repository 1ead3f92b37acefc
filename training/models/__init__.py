"""Model definitions, one file each; they import torch and nothing from training, serving or AWS."""
