package gormstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// gormLogger adapts GORM's logger to slog. Failed statements go to debug,
// since the error is returned to the caller, who decides what it means;
// slow statements go to warn. SQL is logged without its arguments, which
// may hold an environment's config.
type gormLogger struct {
	log   *slog.Logger
	level logger.LogLevel
	slow  time.Duration
}

var (
	_ logger.Interface  = (*gormLogger)(nil)
	_ gorm.ParamsFilter = (*gormLogger)(nil)
)

func newGormLogger(l *slog.Logger, slow time.Duration) *gormLogger {
	if slow <= 0 {
		slow = 200 * time.Millisecond
	}
	return &gormLogger{log: l.With("component", "store"), level: logger.Info, slow: slow}
}

func (g *gormLogger) LogMode(level logger.LogLevel) logger.Interface {
	c := *g
	c.level = level
	return &c
}

func (g *gormLogger) Info(ctx context.Context, msg string, args ...any) {
	g.printf(ctx, logger.Info, slog.LevelDebug, msg, args)
}

func (g *gormLogger) Warn(ctx context.Context, msg string, args ...any) {
	g.printf(ctx, logger.Warn, slog.LevelWarn, msg, args)
}

func (g *gormLogger) Error(ctx context.Context, msg string, args ...any) {
	g.printf(ctx, logger.Error, slog.LevelWarn, msg, args)
}

func (g *gormLogger) printf(ctx context.Context, min logger.LogLevel, level slog.Level, msg string, args []any) {
	if g.level < min || !g.log.Enabled(ctx, level) {
		return
	}
	g.log.Log(ctx, level, fmt.Sprintf(msg, args...))
}

func (g *gormLogger) Trace(ctx context.Context, begin time.Time, fc func() (string, int64), err error) {
	if g.level <= logger.Silent {
		return
	}
	elapsed := time.Since(begin)
	level, msg := slog.LevelDebug, "sql"
	switch {
	case err != nil && !errors.Is(err, gorm.ErrRecordNotFound):
		msg = "sql failed"
	case elapsed > g.slow:
		level, msg = slog.LevelWarn, "slow sql"
	}
	if !g.log.Enabled(ctx, level) {
		return
	}
	sql, rows := fc()
	attrs := []slog.Attr{slog.String("sql", sql), slog.Duration("elapsed", elapsed), slog.Int64("rows", rows)}
	if err != nil {
		attrs = append(attrs, slog.String("err", err.Error()))
	}
	g.log.LogAttrs(ctx, level, msg, attrs...)
}

// ParamsFilter keeps statement arguments out of the log.
func (g *gormLogger) ParamsFilter(_ context.Context, sql string, _ ...any) (string, []any) {
	return sql, nil
}
