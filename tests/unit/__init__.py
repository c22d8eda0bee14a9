"""Unit tests of the lensllm package."""
