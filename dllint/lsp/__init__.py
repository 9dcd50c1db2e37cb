"""The language server (`dllint server`): diagnostics and code actions over LSP, on stdio."""
