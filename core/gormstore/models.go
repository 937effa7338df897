package gormstore

import (
	"encoding/json"
	"time"

	"github.com/ptyhost/ptyhost/core"
)

// The GORM models. Column names and table names are spelled out, so a
// caller's *gorm.DB with another naming strategy (New) finds the same
// schema; timestamps are set by the store, not by GORM's auto time.

// environmentModel is a row of execution_environments.
type environmentModel struct {
	ID          string    `gorm:"column:id;primaryKey"`
	Name        string    `gorm:"column:name;not null"`
	Type        string    `gorm:"column:type;not null"`
	Config      string    `gorm:"column:config;type:text;not null"` // JSON
	IdleTimeout string    `gorm:"column:idle_timeout;not null;default:''"`
	UnsetEnv    string    `gorm:"column:unset_env;not null;default:''"` // a JSON array; '' for none
	Record      *bool     `gorm:"column:record"`                        // NULL: the server's setting
	Node        string    `gorm:"column:node;not null;default:''"`      // a HOST environment's node; '' for none
	Nodes       string    `gorm:"column:nodes;not null;default:''"`     // a JSON array; '' for every node
	CreatedAt   time.Time `gorm:"column:created_at;not null;autoCreateTime:false"`
	UpdatedAt   time.Time `gorm:"column:updated_at;not null;autoUpdateTime:false"`
}

func (environmentModel) TableName() string { return "execution_environments" }

// sessionModel is a row of sessions.
type sessionModel struct {
	ID                string     `gorm:"column:id;primaryKey;index:idx_sessions_order,priority:2"`
	EnvironmentID     string     `gorm:"column:environment_id;not null;index"`
	Node              string     `gorm:"column:node;not null;default:'';index"` // '' on a single server
	ProjectID         string     `gorm:"column:project_id;not null"`
	BranchName        string     `gorm:"column:branch_name;not null"`
	WorktreePath      string     `gorm:"column:worktree_path;not null"`
	Command           string     `gorm:"column:command;type:text;not null;default:''"`   // a JSON array; '' for none
	UnsetEnv          string     `gorm:"column:unset_env;type:text;not null;default:''"` // a JSON array; '' for none
	MaxClients        int        `gorm:"column:max_clients;not null;default:0"`
	SizePolicy        string     `gorm:"column:size_policy;not null;default:''"`
	Status            string     `gorm:"column:status;not null;index"`
	StatusReason      string     `gorm:"column:status_reason;not null"`
	ActiveConnections int        `gorm:"column:active_connections;not null"`
	Cols              int        `gorm:"column:cols;not null"`
	Rows              int        `gorm:"column:rows;not null"`
	ExitCode          *int       `gorm:"column:exit_code"`
	ExitSignal        string     `gorm:"column:exit_signal;not null"`
	LastActiveAt      *time.Time `gorm:"column:last_active_at"` // NULL: never
	IdleTimeout       string     `gorm:"column:idle_timeout;not null;default:''"`
	DetachedAt        *time.Time `gorm:"column:detached_at"` // NULL: a client is attached
	Restarts          int        `gorm:"column:restarts;not null;default:0"`
	CreatedAt         time.Time  `gorm:"column:created_at;not null;autoCreateTime:false;index:idx_sessions_order,priority:1"`
	UpdatedAt         time.Time  `gorm:"column:updated_at;not null;autoUpdateTime:false;index"`
}

func (sessionModel) TableName() string { return "sessions" }

func toEnvironmentModel(e core.Environment) environmentModel {
	return environmentModel{
		ID:          e.ID,
		Name:        e.Name,
		Type:        e.Type,
		Config:      string(e.Config),
		IdleTimeout: e.IdleTimeout,
		UnsetEnv:    unsetEnvColumn(e.UnsetEnv),
		Record:      e.Record,
		Node:        e.Node,
		Nodes:       unsetEnvColumn(e.Nodes),
		CreatedAt:   normTime(e.CreatedAt),
		UpdatedAt:   normTime(e.UpdatedAt),
	}
}

func (m environmentModel) toCore() core.Environment {
	e := core.Environment{
		ID:          m.ID,
		Name:        m.Name,
		Type:        m.Type,
		IdleTimeout: m.IdleTimeout,
		UnsetEnv:    unsetEnvFromColumn(m.UnsetEnv),
		Record:      m.Record,
		Node:        m.Node,
		Nodes:       unsetEnvFromColumn(m.Nodes),
		CreatedAt:   normTime(m.CreatedAt),
		UpdatedAt:   normTime(m.UpdatedAt),
	}
	if m.Config != "" {
		e.Config = json.RawMessage(m.Config)
	}
	return e
}

// unsetEnvColumn is a list of strings — an environment's or a session's
// unset_env, a session's command — as its column holds it: a JSON array,
// or ” for none.
func unsetEnvColumn(names []string) string {
	if len(names) == 0 {
		return ""
	}
	b, _ := json.Marshal(names) // strings always marshal
	return string(b)
}

// unsetEnvFromColumn reads unsetEnvColumn's column back; what does not
// decode (no row of ours) is none.
func unsetEnvFromColumn(col string) []string {
	var names []string
	if col != "" {
		_ = json.Unmarshal([]byte(col), &names)
	}
	return names
}

func toSessionModel(r core.SessionRecord) sessionModel {
	m := sessionModel{
		ID:                r.ID,
		EnvironmentID:     r.EnvironmentID,
		Node:              r.Node,
		ProjectID:         r.ProjectID,
		BranchName:        r.BranchName,
		WorktreePath:      r.WorktreePath,
		Command:           unsetEnvColumn(r.Command),
		UnsetEnv:          unsetEnvColumn(r.UnsetEnv),
		MaxClients:        r.MaxClients,
		SizePolicy:        string(r.SizePolicy),
		Status:            string(r.Status),
		StatusReason:      r.StatusReason,
		ActiveConnections: r.ActiveConnections,
		Cols:              r.Cols,
		Rows:              r.Rows,
		ExitCode:          copyInt(r.ExitCode),
		ExitSignal:        r.ExitSignal,
		IdleTimeout:       r.IdleTimeout,
		Restarts:          r.Restarts,
		CreatedAt:         normTime(r.CreatedAt),
		UpdatedAt:         normTime(r.UpdatedAt),
	}
	if !r.LastActiveAt.IsZero() {
		t := normTime(r.LastActiveAt)
		m.LastActiveAt = &t
	}
	if !r.DetachedAt.IsZero() {
		t := normTime(r.DetachedAt)
		m.DetachedAt = &t
	}
	return m
}

func (m sessionModel) toCore() core.SessionRecord {
	r := core.SessionRecord{
		ID:                m.ID,
		EnvironmentID:     m.EnvironmentID,
		Node:              m.Node,
		ProjectID:         m.ProjectID,
		BranchName:        m.BranchName,
		WorktreePath:      m.WorktreePath,
		Command:           unsetEnvFromColumn(m.Command),
		UnsetEnv:          unsetEnvFromColumn(m.UnsetEnv),
		MaxClients:        m.MaxClients,
		SizePolicy:        core.SizePolicy(m.SizePolicy),
		Status:            core.Status(m.Status),
		StatusReason:      m.StatusReason,
		ActiveConnections: m.ActiveConnections,
		Cols:              m.Cols,
		Rows:              m.Rows,
		ExitCode:          copyInt(m.ExitCode),
		ExitSignal:        m.ExitSignal,
		IdleTimeout:       m.IdleTimeout,
		Restarts:          m.Restarts,
		CreatedAt:         normTime(m.CreatedAt),
		UpdatedAt:         normTime(m.UpdatedAt),
	}
	if m.LastActiveAt != nil {
		r.LastActiveAt = normTime(*m.LastActiveAt)
	}
	if m.DetachedAt != nil {
		r.DetachedAt = normTime(*m.DetachedAt)
	}
	return r
}

func copyInt(p *int) *int {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// ownerModel is the one row of server_owner: the server that owns the
// database (claim.go).
type ownerModel struct {
	Slot     int    `gorm:"column:slot;primaryKey;autoIncrement:false"` // always ownerSlot
	NodeID   string `gorm:"column:node_id;not null"`
	Hostname string `gorm:"column:hostname;not null"`
	PID      int    `gorm:"column:pid;not null"`
	Instance string `gorm:"column:instance;not null;default:''"` // Owner.Instance
	DataDir  string `gorm:"column:data_dir;not null"`
	// Beats counts the writes of the row, so that a server taking it over
	// replaces it only if nobody wrote it since it was read.
	Beats       int64     `gorm:"column:beats;not null;default:0"`
	StartedAt   time.Time `gorm:"column:started_at;not null;autoCreateTime:false"`
	HeartbeatAt time.Time `gorm:"column:heartbeat_at;not null;autoUpdateTime:false"`
}

func (ownerModel) TableName() string { return "server_owner" }
