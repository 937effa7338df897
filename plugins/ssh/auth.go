package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/ptyhost/ptyhost/shared"
)

// agentSockEnv names the variable that locates the SSH agent.
const agentSockEnv = "SSH_AUTH_SOCK"

// defaultIdentities are tried, like OpenSSH does, when a config names no
// authentication method at all (those that exist and need no passphrase).
var defaultIdentities = []string{"~/.ssh/id_ed25519", "~/.ssh/id_ecdsa", "~/.ssh/id_rsa"}

// credentials are one endpoint's means of logging in, loaded for one
// connection attempt. The password is held only for that attempt and never
// logged; describe lists the methods by file path and variable name.
type credentials struct {
	signers     []ssh.Signer // from identity files, in order
	sources     []string     // what each method is, for logs and errors
	agentSock   string       // "" when the agent is not used
	password    string
	hasPassword bool

	mu       sync.Mutex
	agentErr error // why the agent could not be used, if it could not
}

// loadCredentials reads what ep's authentication needs from the plugin's
// files and environment (getenv). Problems are configuration problems and
// wrap shared.ErrInvalidConfig.
func loadCredentials(ep *endpoint, getenv func(string) string) (*credentials, error) {
	c := &credentials{}
	if ep.IdentityFile != "" {
		signer, err := loadIdentity(ep.IdentityFile, ep.PassphraseEnv, getenv)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", shared.ErrInvalidConfig, err)
		}
		c.signers = append(c.signers, signer)
		c.sources = append(c.sources, "identity_file "+ep.IdentityFile)
	}
	if ep.PasswordEnv != "" {
		pw := getenv(ep.PasswordEnv)
		if pw == "" {
			return nil, fmt.Errorf("%w: password_env: %s is not set in the ptyhost server's environment", shared.ErrInvalidConfig, ep.PasswordEnv)
		}
		c.password, c.hasPassword = pw, true
		c.sources = append(c.sources, "password from $"+ep.PasswordEnv)
	}
	nothingElse := ep.IdentityFile == "" && ep.PasswordEnv == ""
	switch {
	case ep.Agent != nil && *ep.Agent:
		sock := getenv(agentSockEnv)
		if sock == "" {
			return nil, fmt.Errorf("%w: agent: %s is not set in the ptyhost server's environment", shared.ErrInvalidConfig, agentSockEnv)
		}
		c.agentSock = sock
	case ep.Agent == nil && nothingElse:
		c.agentSock = getenv(agentSockEnv)
	}
	if c.agentSock != "" {
		c.sources = append(c.sources, "the agent at $"+agentSockEnv)
	}
	if ep.Agent == nil && nothingElse {
		for _, p := range defaultIdentities {
			path, err := expandPath(p)
			if err != nil {
				continue
			}
			if signer, err := loadIdentity(path, "", getenv); err == nil {
				c.signers = append(c.signers, signer)
				c.sources = append(c.sources, "identity_file "+path)
			}
		}
	}
	if len(c.signers) == 0 && c.agentSock == "" && !c.hasPassword {
		return nil, fmt.Errorf("%w: no authentication method for %s: set identity_file, password_env or agent "+
			"(%s is not set, and there is no unencrypted %s)", shared.ErrInvalidConfig, ep, agentSockEnv, strings.Join(defaultIdentities, ", "))
	}
	return c, nil
}

// loadIdentity reads a private key file, decrypting it with the passphrase
// in the variable passphraseEnv names.
func loadIdentity(path, passphraseEnv string, getenv func(string) string) (ssh.Signer, error) {
	pem, fi, err := readConfigFile("identity_file", path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("identity_file %s does not exist", path)
		}
		return nil, err
	}
	if err := keyTooOpen(path, fi); err != nil {
		return nil, err
	}
	signer, err := ssh.ParsePrivateKey(pem)
	var missing *ssh.PassphraseMissingError
	switch {
	case err == nil:
		return signer, nil
	case !errors.As(err, &missing):
		return nil, fmt.Errorf("identity_file %s: %w", path, err)
	case passphraseEnv == "":
		return nil, fmt.Errorf("identity_file %s is protected by a passphrase: name the variable that holds it in passphrase_env", path)
	}
	passphrase := getenv(passphraseEnv)
	if passphrase == "" {
		return nil, fmt.Errorf("passphrase_env: %s is not set in the ptyhost server's environment", passphraseEnv)
	}
	signer, err = ssh.ParsePrivateKeyWithPassphrase(pem, []byte(passphrase))
	if errors.Is(err, x509.IncorrectPasswordError) {
		return nil, fmt.Errorf("identity_file %s: the passphrase in $%s is wrong", path, passphraseEnv)
	}
	if err != nil {
		return nil, fmt.Errorf("identity_file %s: %w", path, err)
	}
	return signer, nil
}

// methods returns the SSH auth methods in the order they are tried — public
// keys (identity files first, then the agent's keys), then the password,
// also as keyboard-interactive for servers that only offer that — and a
// function that releases the agent connection once the handshake is over.
// The agent is given until ctx's deadline (agentTimeout without one): an
// agent that does not answer (a stalled forwarded agent, one waiting for
// a confirmation) must not hold the handshake, which closing the server's
// connection does not end while it waits for the agent.
func (c *credentials) methods(ctx context.Context) ([]ssh.AuthMethod, func()) {
	var agentConn net.Conn
	var methods []ssh.AuthMethod
	if len(c.signers) > 0 || c.agentSock != "" {
		methods = append(methods, ssh.PublicKeysCallback(func() ([]ssh.Signer, error) {
			signers := slices.Clone(c.signers)
			if c.agentSock == "" {
				return signers, nil
			}
			conn, err := net.DialTimeout("unix", c.agentSock, 5*time.Second)
			if err != nil {
				c.setAgentErr(err)
				return signers, nil
			}
			agentConn = conn
			deadline, ok := ctx.Deadline()
			if !ok {
				deadline = time.Now().Add(agentTimeout)
			}
			_ = conn.SetDeadline(deadline)
			keys, err := agent.NewClient(conn).Signers()
			if err != nil {
				c.setAgentErr(err)
			}
			return append(signers, keys...), nil
		}))
	}
	if c.hasPassword {
		pw := c.password
		methods = append(methods,
			ssh.Password(pw),
			ssh.KeyboardInteractive(func(_, _ string, questions []string, echos []bool) ([]string, error) {
				// Answer a lone hidden prompt ("Password:") with the
				// password; anything else (one-time codes) cannot be.
				if len(questions) == 0 {
					return nil, nil
				}
				if len(questions) != 1 || echos[0] {
					return nil, errors.New("the server asks more than a password")
				}
				return []string{pw}, nil
			}))
	}
	return methods, func() {
		if agentConn != nil {
			_ = agentConn.Close()
		}
	}
}

// agentTimeout bounds the agent's answers in a handshake without a
// deadline.
const agentTimeout = 30 * time.Second

func (c *credentials) setAgentErr(err error) {
	c.mu.Lock()
	c.agentErr = err
	c.mu.Unlock()
}

// describe lists the methods offered, without any secret.
func (c *credentials) describe() string {
	s := strings.Join(c.sources, ", ")
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.agentErr != nil {
		s += fmt.Sprintf(" (the agent could not be used: %v)", c.agentErr)
	}
	return s
}
