package identity_test

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/openkms/kms/internal/identity"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/store/boltstore"
)

func TestBootstrapRootIsStableAndSealed(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "kms.db")
	st, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	k := make([]byte, 32)
	rand.Read(k)
	root, _ := keys.NewRootKey(k)
	ctx := context.Background()
	first, err := identity.BootstrapRoot(ctx, st, root, "111122223333")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^AKIA[A-Z2-7]{16}$`).MatchString(first.ID) || len(first.Secret) != 40 {
		t.Fatalf("access key not in AWS's shape: %q / %d-character secret", first.ID, len(first.Secret))
	}
	again, err := identity.BootstrapRoot(ctx, st, root, "111122223333")
	if err != nil || again != first {
		t.Fatalf("second bootstrap gave %+v, %v; want the same key", again, err)
	}
	other, err := identity.BootstrapRoot(ctx, st, root, "444455556666")
	if err != nil || other.ID == first.ID {
		t.Fatalf("another account got %+v, %v", other, err)
	}
	k[0] ^= 1
	wrong, _ := keys.NewRootKey(k)
	if _, err := identity.BootstrapRoot(ctx, st, wrong, "111122223333"); err == nil {
		t.Fatal("the secret opened under another root key")
	}
}
