package motoserver

// The launcher's own tests run it as the package would: the same
// interpreter (MOTO_PYTHON) and the same file.
var (
	Python        = python
	WriteLauncher = writeLauncher
)
