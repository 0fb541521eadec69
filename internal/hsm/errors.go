package hsm

import "errors"

// ErrNoCgo is returned by Open and Create in a binary built without cgo,
// which cannot load a PKCS#11 module.
var ErrNoCgo = errors.New("this kms binary was built without cgo and cannot load a PKCS#11 module")

// ErrOpen is returned by Key.Open for a sealed value that does not open
// with the key (another key, other additional data, or altered bytes);
// never when the token refuses or fails to decrypt.
var ErrOpen = errors.New("the value does not open with the key in the token")
