package api

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/ptyhost/ptyhost/core"
)

// listOptionsFrom reads GET /api/v1/sessions's query: status (repeated or
// comma-separated), environment_id, limit and cursor, each of the last
// three once (queryParam).
func listOptionsFrom(q url.Values) (core.ListOptions, error) {
	var o core.ListOptions
	for name, vals := range q {
		switch name {
		case "environment_id", "limit", "cursor":
			if _, _, err := queryParam(q, name); err != nil {
				return o, err
			}
		}
		switch name {
		case "status":
			for _, v := range vals {
				for st := range strings.SplitSeq(v, ",") {
					o.Statuses = append(o.Statuses, core.Status(strings.ToUpper(strings.TrimSpace(st))))
				}
			}
		case "environment_id":
			o.EnvironmentID = vals[0]
			if o.EnvironmentID == "" {
				return o, fmt.Errorf("%w: environment_id is empty", core.ErrInvalidArgument)
			}
		case "limit":
			v := vals[0]
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > core.MaxListLimit {
				return o, fmt.Errorf("%w: limit %q: want an integer from 1 to %d", core.ErrInvalidArgument, v, core.MaxListLimit)
			}
			o.Limit = n
		case "cursor":
			o.Cursor = vals[0]
			if o.Cursor == "" {
				return o, fmt.Errorf("%w: cursor is empty; leave it out for the first page", core.ErrInvalidArgument)
			}
		case "access_token":
		default:
			return o, fmt.Errorf("%w: unknown query parameter %q: want status, environment_id, limit or cursor", core.ErrInvalidArgument, name)
		}
	}
	return o, nil
}
