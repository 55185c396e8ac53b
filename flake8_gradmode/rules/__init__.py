"""One module per rule; ``flake8_gradmode.registry`` lists them."""
