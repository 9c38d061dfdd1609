package cga

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// MinRSABits is the smallest RSA modulus accepted for signing, signature
// verification and key generation (RFC 5533 §16: at least 1024 bits).
// Address verification accepts any key: RFC 3972 appendix A uses 512 bits.
const MinRSABits = 1024

// CheckRSAKey refuses RSA keys shorter than MinRSABits.
func CheckRSAKey(pub *rsa.PublicKey) error {
	if pub == nil || pub.N == nil {
		return ErrNotRSA
	}
	if n := pub.N.BitLen(); n < MinRSABits {
		return fmt.Errorf("%w: %d bits", ErrKeyTooSmall, n)
	}
	return nil
}

// GenerateKey makes an RSA key of the given size (at least MinRSABits).
// r nil means crypto/rand.
func GenerateKey(r io.Reader, bits int) (*rsa.PrivateKey, error) {
	if bits < MinRSABits {
		return nil, fmt.Errorf("%w: %d bits requested", ErrKeyTooSmall, bits)
	}
	if r == nil {
		r = rand.Reader
	}
	k, err := rsa.GenerateKey(r, bits)
	if err != nil {
		return nil, fmt.Errorf("cga: generate RSA key: %w", err)
	}
	return k, nil
}

// MarshalPublicKey returns the DER SubjectPublicKeyInfo of pub
// (rsaEncryption with RSAPublicKey, RFC 3972 §3).
func MarshalPublicKey(pub *rsa.PublicKey) ([]byte, error) {
	b, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("cga: marshal public key: %w", err)
	}
	return b, nil
}

// ParsePublicKey decodes a DER SubjectPublicKeyInfo holding an RSA key. It
// does not check the key size (see CheckRSAKey).
func ParsePublicKey(spki []byte) (*rsa.PublicKey, error) {
	k, err := x509.ParsePKIXPublicKey(spki)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotRSA, err)
	}
	pub, ok := k.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: %T", ErrNotRSA, k)
	}
	return pub, nil
}

// ParsePrivateKeyPEM reads an RSA private key from PEM, either PKCS#8
// ("PRIVATE KEY") or PKCS#1 ("RSA PRIVATE KEY"). Encrypted keys and keys
// below MinRSABits are refused.
func ParsePrivateKeyPEM(b []byte) (*rsa.PrivateKey, error) {
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return nil, fmt.Errorf("%w: no PEM private key block", ErrBadKeyFile)
		}
		if _, enc := blk.Headers["Proc-Type"]; enc {
			return nil, fmt.Errorf("%w: encrypted PEM is not supported", ErrBadKeyFile)
		}
		var key *rsa.PrivateKey
		switch blk.Type {
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%w: PKCS#8: %v", ErrBadKeyFile, err)
			}
			rk, ok := k.(*rsa.PrivateKey)
			if !ok {
				return nil, fmt.Errorf("%w: %T is not an RSA key", ErrBadKeyFile, k)
			}
			key = rk
		case "RSA PRIVATE KEY":
			k, err := x509.ParsePKCS1PrivateKey(blk.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%w: PKCS#1: %v", ErrBadKeyFile, err)
			}
			key = k
		case "ENCRYPTED PRIVATE KEY":
			return nil, fmt.Errorf("%w: encrypted PKCS#8 is not supported", ErrBadKeyFile)
		default:
			continue // e.g. EC PARAMETERS or a certificate before the key
		}
		if err := CheckRSAKey(&key.PublicKey); err != nil {
			return nil, err
		}
		return key, nil
	}
}

// MarshalPrivateKeyPEM encodes key as PEM PKCS#8 ("PRIVATE KEY").
func MarshalPrivateKeyPEM(key *rsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("cga: marshal private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// LoadPrivateKey reads a PEM RSA private key file (PKCS#1 or PKCS#8).
func LoadPrivateKey(path string) (*rsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKeyFile, err)
	}
	k, err := ParsePrivateKeyPEM(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// SavePrivateKey writes key as PEM PKCS#8 to a new file with mode 0600. It
// refuses to overwrite an existing file.
func SavePrivateKey(path string, key *rsa.PrivateKey) error {
	b, err := MarshalPrivateKeyPEM(key)
	if err != nil {
		return err
	}
	return writeNewFile(path, b, 0o600)
}

// writeNewFile creates path (which must not exist) with mode perm, writes b
// and syncs; on failure it removes what it created.
func writeNewFile(path string, b []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("cga: %w", err)
	}
	// The umask cannot widen perm, but an inherited ACL default could not
	// narrow it either: make the mode exact.
	err = f.Chmod(perm)
	if err == nil {
		_, err = f.Write(b)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(filepath.Clean(path))
		return fmt.Errorf("cga: write %s: %w", path, err)
	}
	return nil
}
