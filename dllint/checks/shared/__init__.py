"""Facts about values that several rules query and that belong in dllint/model/: kept here, outside
the model, while the model was locked for other work; they import only the model."""
