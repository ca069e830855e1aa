"""The reference CNN and its training, with checkpoints, and the Keras callbacks that watch a
CNN learn."""
