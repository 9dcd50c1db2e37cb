"""One module per rule, grouped by family. Importing this package registers nothing by itself;
the registry imports every submodule."""
