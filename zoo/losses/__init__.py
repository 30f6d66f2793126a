"""Loss functions, one module per family; recipes in the model specs reference them."""
