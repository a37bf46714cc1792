// Placeholder: the plan implementation is being written.
