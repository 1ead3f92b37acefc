"""Data set loaders, one module per data set, each reading the data set's official public format."""
