package gormstore

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
	"gorm.io/gorm/clause"

	"github.com/ptyhost/ptyhost/core"
)

// The nodes' cluster secrets. The nodes of a cluster authenticate to each
// other with one shared secret (core/api's ClusterOptions.Secret); a node
// started with another one registers like any other and refuses what the
// others forward to it. So that the others can tell, and neither place
// sessions on it nor send it requests (and the secret with them), each
// node records in its row a fingerprint of its secret (secretFingerprint),
// and ListNodes says of each node whether its fingerprint is the listing
// node's (core.Node.ClusterSecret). A node logs an error once for each
// live node it finds with another fingerprint: when it registers, and
// after a renewal that first sees one (NodeLease.checkSecrets).
//
// A row without a fingerprint, one a ptyhost from before them wrote, is
// of a secret unknown: not a mismatch, as every node shared the secret
// before. Such a ptyhost taking a row over leaves the fingerprint of the
// row's last holder in place: a fingerprint counts only while the
// instance that wrote it holds the row (nodeModel.FingerprintInstance).

// clusterSlot is the primary key of cluster's one row.
const clusterSlot = 1

// clusterModel is the one row of cluster (PostgreSQL only): the identity
// of the cluster whose nodes share the database, drawn at random by the
// first node that registers, and kept. It salts the fingerprints of the
// cluster secret (secretFingerprint).
type clusterModel struct {
	Slot int    `gorm:"column:slot;primaryKey;autoIncrement:false"` // always clusterSlot
	ID   string `gorm:"column:id;not null"`
}

func (clusterModel) TableName() string { return "cluster" }

// clusterID returns the cluster's identity, drawing it if no node has
// yet. Of two nodes drawing it at once, the first insert wins and both
// read it.
func (s *DB) clusterID(ctx context.Context) (string, error) {
	db := s.db.WithContext(ctx)
	err := db.Clauses(clause.OnConflict{DoNothing: true}).Create(&clusterModel{Slot: clusterSlot, ID: rand.Text()}).Error
	if err != nil {
		return "", fmt.Errorf("store: the cluster's identity: %w", err)
	}
	var row clusterModel
	if err := db.Where("slot = ?", clusterSlot).Take(&row).Error; err != nil {
		return "", fmt.Errorf("store: the cluster's identity: %w", err)
	}
	return row.ID, nil
}

// fingerprintScheme begins every fingerprint: a node that would compute
// them otherwise (another KDF, other costs) writes another scheme, and
// fingerprints of two schemes compare as unknown rather than as
// different (compareSecrets).
const fingerprintScheme = "argon2id-1:"

// The costs of the fingerprints' Argon2id: OWASP's minimum for passwords
// (19 MiB, two passes, one lane), some 30 ms once at a node's start.
const (
	fingerprintTime    = 2
	fingerprintMemory  = 19 * 1024 // KiB
	fingerprintThreads = 1
	fingerprintBytes   = 8
)

// secretFingerprint returns the fingerprint of the cluster secret secret
// in the cluster clusterID: fingerprintScheme, then 8 bytes of
// Argon2id(secret, salt) in hex, where the salt is a fixed string that
// keeps the key to this one use followed by the cluster's identity.
//
// The fingerprint lets whoever reads the nodes table check guesses of the
// secret, which no fingerprint that nodes can compare avoids. It is made
// so that this is of little use: the salt, random per cluster, makes a
// table computed beforehand worthless (and one of the guesses serves one
// cluster only); Argon2id, slow and memory-hard, makes each guess cost
// tens of milliseconds and 19 MiB, not the nanoseconds of a plain hash
// or an HMAC, which matters for a secret a person chose; and 64 bits are
// kept, enough that two different secrets never pass for the same one
// by chance (2^-64), and no more of the KDF's output than comparing
// needs. A secret such as 'openssl rand -hex 16' is out of reach of
// guessing whatever the hash. The secret itself is never stored, logged
// or kept past this call.
func secretFingerprint(secret, clusterID string) string {
	salt := []byte("ptyhost cluster secret fingerprint\x00" + clusterID)
	key := argon2.IDKey([]byte(secret), salt, fingerprintTime, fingerprintMemory, fingerprintThreads, fingerprintBytes)
	return fingerprintScheme + hex.EncodeToString(key)
}

// compareSecrets returns the core.Node.ClusterSecret of a node whose row
// has the fingerprint other, as the node with the fingerprint self sees
// it: unknown when either has none, or they are of different schemes.
func compareSecrets(self, other string) string {
	selfScheme, _, ok1 := strings.Cut(self, ":")
	otherScheme, _, ok2 := strings.Cut(other, ":")
	switch {
	case !ok1 || !ok2 || selfScheme != otherScheme:
		return core.SecretUnknown
	case subtle.ConstantTimeCompare([]byte(self), []byte(other)) == 1:
		return core.SecretSame
	}
	return core.SecretDiffers
}

// registeredFingerprint is, in a statement on nodes n, the fingerprint
// that counts: the row's, if the instance that holds the row wrote it.
const registeredFingerprint = `CASE WHEN n.fingerprint_instance = n.instance THEN n.secret_fingerprint ELSE '' END`

// checkSecrets logs an error for each live node other than this one whose
// fingerprint differs from this node's, the first time it sees it with
// that fingerprint; atStart says it is this node's registration. A node
// seen again with this node's fingerprint, or none, is forgotten, so that
// a mismatch coming back is logged again. The query is bounded by a
// renewal period; a failure is logged, and the next renewal checks again.
// It is called by RegisterNode, then by renew only: reported needs no
// lock.
func (l *NodeLease) checkSecrets(ctx context.Context, atStart bool) {
	if l.fingerprint == "" {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, l.opts.Renewal)
	defer cancel()
	var rows []struct{ Name, URL, Fingerprint string }
	err := l.s.renewalDB().WithContext(ctx).Raw(`SELECT n.name, n.url, `+registeredFingerprint+` AS fingerprint
		FROM nodes n WHERE n.name <> ? AND n.lease_expires_at > now() AND NOT n.released ORDER BY n.name`, l.opts.Name).Scan(&rows).Error
	if err != nil {
		if !errors.Is(err, context.Canceled) && l.ctx.Err() == nil {
			l.log.Warn("checking the other nodes' cluster secrets failed; will retry", "err", err)
		}
		return
	}
	for _, r := range rows {
		if compareSecrets(l.fingerprint, r.Fingerprint) != core.SecretDiffers {
			delete(l.reported, r.Name)
			continue
		}
		if l.reported[r.Name] == r.Fingerprint {
			continue
		}
		l.reported[r.Name] = r.Fingerprint
		const why = ": the two refuse each other's forwarded requests, so neither places sessions on the other, " +
			"and requests for a session of one through the other fail (502); give every node the same --cluster-secret"
		if atStart {
			l.log.Error("this node starts with a cluster secret other than that of a running node"+why, "other_node", r.Name, "url", r.URL)
		} else {
			l.log.Error("a node runs with a cluster secret other than this node's"+why, "other_node", r.Name, "url", r.URL)
		}
	}
}
