// Placeholder: the instructions implementation is being written.
