package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

// 'ptyhost completion SHELL' prints a completion script. The commands and
// their flags are not listed here a second time: completion asks each
// known command for its --help, as a user would, and reads the flags off
// it (printHelp's "  --flag ARG" lines), so a flag added to a command is
// completed without touching this file, and a command not built in (yet)
// is left out. The scripts complete commands, subcommands, flags, the
// values of a few flags (files, directories, environment types), and
// session IDs for the commands that take them, from 'ptyhost ls -q'.

const completionHelp = `Usage: ptyhost completion bash|zsh|fish

Print a script that makes the shell complete ptyhost's commands, their
flags, and the IDs of running sessions (from 'ptyhost ls -q', so with
PTYHOST_SERVER and PTYHOST_TOKEN as set in the shell).

  bash   add to ~/.bashrc:          source <(ptyhost completion bash)
  zsh    add to ~/.zshrc:           source <(ptyhost completion zsh)
         (uses zsh's bashcompinit; run compinit first)
  fish   ptyhost completion fish > ~/.config/fish/completions/ptyhost.fish
`

// completionCommands are the commands (and subcommands) a script may
// complete, in the order shown; those whose --help fails in this build
// are left out.
var completionCommands = []string{
	"serve", "stop", "run", "attach", "ls", "kill", "prune", "restart", "rec",
	"env", "env ls", "env show", "env add", "env update", "env health", "env rm",
	"plugins", "plugins ls", "plugins restart", "nodes", "nodes ls", "nodes rm",
	"version", "completion",
}

// completionArgs says what a command's positional arguments are, for the
// commands that take something a script can complete.
var completionArgs = map[string]string{
	"attach":     "session",
	"kill":       "session",
	"restart":    "session",
	"rec":        "session",
	"completion": "shell",
	"run":        "command",
}

// complFlag is one flag of a command, as its help shows it.
type complFlag struct {
	name string // without dashes
	arg  string // the argument's name (FILE, DIR, URL…), or "" for a switch
	help string // its description, on one line
}

// spelled is the flag as typed: -a for one letter, else --name.
func (f complFlag) spelled() string {
	if len(f.name) == 1 {
		return "-" + f.name
	}
	return "--" + f.name
}

// complCommand is one command of the script.
type complCommand struct {
	path  string // "attach", "env add"
	flags []complFlag
	subs  []string // the subcommands, for "env" and "plugins"
}

// helpFlagLine matches a flag line of printHelp's output; the
// description follows on the next line.
var helpFlagLine = regexp.MustCompile(`^  (-{1,2})([A-Za-z0-9][A-Za-z0-9-]*)(?: (\S+))?$`)

// completionSpec asks every command of completionCommands for its help
// and returns those that answered, with their flags.
func completionSpec(ctx context.Context) []complCommand {
	var cmds []complCommand
	byPath := map[string]int{}
	for _, path := range completionCommands {
		var out bytes.Buffer
		args := append(strings.Fields(path), "--help")
		err := run(ctx, args, stdio{in: strings.NewReader(""), out: &out, err: io.Discard})
		if err != nil || out.Len() == 0 {
			continue
		}
		c := complCommand{path: path, flags: parseHelpFlags(out.String())}
		if parent, sub, ok := strings.Cut(path, " "); ok {
			i, found := byPath[parent]
			if !found {
				continue
			}
			cmds[i].subs = append(cmds[i].subs, sub)
		}
		byPath[path] = len(cmds)
		cmds = append(cmds, c)
	}
	return cmds
}

// parseHelpFlags reads the flags off a command's help.
func parseHelpFlags(help string) []complFlag {
	var flags []complFlag
	lines := strings.Split(help, "\n")
	for i, l := range lines {
		m := helpFlagLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		f := complFlag{name: m[2], arg: m[3]}
		var desc []string
		for _, d := range lines[i+1:] {
			if !strings.HasPrefix(d, helpIndent) {
				break
			}
			desc = append(desc, strings.TrimSpace(d))
		}
		f.help = strings.Join(desc, " ")
		flags = append(flags, f)
	}
	flags = append(flags, complFlag{name: "help", help: "print this help"})
	return flags
}

func runCompletion(ctx context.Context, args []string, stdio stdio) error {
	fs := flag.NewFlagSet("completion", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	pos, help, err := parseFlags(fs, completionHelp, args, true, stdio)
	if help || err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError{"completion: want one shell: bash, zsh or fish (see 'ptyhost completion --help')"}
	}
	var script string
	switch pos[0] {
	case "bash":
		script = bashCompletion(completionSpec(ctx))
	case "zsh":
		script = "# zsh completion for ptyhost, through zsh's bash completion support.\n" +
			"autoload -U +X bashcompinit && bashcompinit\n" + bashCompletion(completionSpec(ctx))
	case "fish":
		script = fishCompletion(completionSpec(ctx))
	default:
		return usageError{fmt.Sprintf("completion: unknown shell %q: want bash, zsh or fish", pos[0])}
	}
	_, err = io.WriteString(stdio.out, script)
	return err
}

// argKind says how a flag's argument is completed, from the name its
// help gives it: files, directories, environment types, or nothing.
func argKind(arg string) string {
	switch arg {
	case "FILE":
		return "file"
	case "DIR":
		return "dir"
	case "TYPE":
		return "type"
	}
	return ""
}

// bashCompletion returns the bash script for cmds. The script works out
// the command from the words before the cursor (skipping flags and the
// values of flags that take one) and completes from tables.
func bashCompletion(cmds []complCommand) string {
	var b strings.Builder
	var top []string
	for _, c := range cmds {
		if !strings.Contains(c.path, " ") {
			top = append(top, c.path)
		}
	}
	b.WriteString("# bash completion for ptyhost; generated by 'ptyhost completion bash'.\n\n")
	b.WriteString("_ptyhost_subs() {\n\tcase \"$1\" in\n")
	for _, c := range cmds {
		if len(c.subs) > 0 {
			fmt.Fprintf(&b, "\t%q) echo %q ;;\n", c.path, strings.Join(c.subs, " "))
		}
	}
	b.WriteString("\tesac\n}\n\n")
	b.WriteString("_ptyhost_flags() {\n\tcase \"$1\" in\n")
	for _, c := range cmds {
		var names []string
		for _, f := range c.flags {
			names = append(names, f.spelled())
		}
		fmt.Fprintf(&b, "\t%q) echo %q ;;\n", c.path, strings.Join(names, " "))
	}
	b.WriteString("\tesac\n}\n\n")
	b.WriteString("# _ptyhost_arg CMD FLAG prints how FLAG's value is completed (file, dir,\n# type, or none), and fails for a flag that takes no value.\n")
	b.WriteString("_ptyhost_arg() {\n\tcase \"$1 $2\" in\n")
	for _, c := range cmds {
		for _, f := range c.flags {
			if f.arg == "" {
				continue
			}
			kind := argKind(f.arg)
			if kind == "" {
				kind = "none"
			}
			fmt.Fprintf(&b, "\t%q) echo %s ;;\n", c.path+" "+f.spelled(), kind)
		}
	}
	b.WriteString("\t*) return 1 ;;\n\tesac\n}\n\n")
	b.WriteString("_ptyhost_args() {\n\tcase \"$1\" in\n")
	for _, path := range slices.Sorted(maps.Keys(completionArgs)) {
		fmt.Fprintf(&b, "\t%q) echo %s ;;\n", path, completionArgs[path])
	}
	b.WriteString("\tesac\n}\n\n")
	fmt.Fprintf(&b, `_ptyhost() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
	local cmd="" w i dashdash=0
	COMPREPLY=()
	for ((i = 1; i < COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		if [[ $w == -- ]]; then
			dashdash=1
			break
		fi
		if [[ $w == -* ]]; then
			# Skip the value of a flag that takes one.
			if [[ $w != *=* ]] && _ptyhost_arg "$cmd" "$w" >/dev/null; then
				((i++))
			fi
			continue
		fi
		if [[ -z $cmd ]]; then
			cmd=$w
		elif [[ " $(_ptyhost_subs "$cmd") " == *" $w "* && $cmd != *" "* ]]; then
			cmd="$cmd $w"
		else
			break
		fi
	done
	if [[ -z $cmd ]]; then
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "--help --version" -- "$cur"))
		else
			COMPREPLY=($(compgen -W %q -- "$cur"))
		fi
		return 0
	fi
	if ((dashdash)); then
		# run's command: a program, then its arguments.
		if ((i + 1 == COMP_CWORD)); then
			COMPREPLY=($(compgen -c -- "$cur"))
		else
			COMPREPLY=($(compgen -f -- "$cur"))
		fi
		return 0
	fi
	local kind
	if kind=$(_ptyhost_arg "$cmd" "$prev"); then
		case $kind in
		file) COMPREPLY=($(compgen -f -- "$cur")) ;;
		dir) COMPREPLY=($(compgen -d -- "$cur")) ;;
		type) COMPREPLY=($(compgen -W "HOST DOCKER SSH" -- "$cur")) ;;
		esac
		return 0
	fi
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$(_ptyhost_flags "$cmd")" -- "$cur"))
		return 0
	fi
	local subs
	subs=$(_ptyhost_subs "$cmd")
	if [[ -n $subs ]]; then
		COMPREPLY=($(compgen -W "$subs" -- "$cur"))
		return 0
	fi
	case $(_ptyhost_args "$cmd") in
	session) COMPREPLY=($(compgen -W "$("${COMP_WORDS[0]}" ls -q 2>/dev/null)" -- "$cur")) ;;
	shell) COMPREPLY=($(compgen -W "bash zsh fish" -- "$cur")) ;;
	esac
	return 0
}

complete -F _ptyhost ptyhost
`, strings.Join(top, " "))
	return b.String()
}

// fishCompletion returns the fish script for cmds: one complete line per
// command, subcommand and flag, conditioned on the command path typed so
// far.
func fishCompletion(cmds []complCommand) string {
	var b strings.Builder
	var paths []string
	for _, c := range cmds {
		if strings.Contains(c.path, " ") {
			paths = append(paths, fishQuote(c.path))
		}
	}
	b.WriteString("# fish completion for ptyhost; generated by 'ptyhost completion fish'.\n\n")
	fmt.Fprintf(&b, `# The command path typed so far: "", "attach", "env add"...
function __ptyhost_path
	set -l path
	for w in (commandline -opc)[2..-1]
		if string match -q -- '-*' $w
			continue
		end
		if test (count $path) -eq 0
			set path $w
		else if test (count $path) -eq 1; and contains -- "$path[1] $w" %s
			set -a path $w
		else
			break
		end
	end
	echo $path
end

function __ptyhost_at
	set -l p (__ptyhost_path)
	test "$p" = "$argv[1]"
end

complete -c ptyhost -f
complete -c ptyhost -n '__ptyhost_at ""' -l version -d 'print the version'
complete -c ptyhost -n '__ptyhost_at ""' -l help -d 'print the usage'
`, strings.Join(paths, " "))
	for _, c := range cmds {
		parent, sub, isSub := strings.Cut(c.path, " ")
		if isSub {
			fmt.Fprintf(&b, "complete -c ptyhost -n %s -a %s\n", fishQuote("__ptyhost_at "+fishQuote(parent)), fishQuote(sub))
		} else {
			fmt.Fprintf(&b, "complete -c ptyhost -n '__ptyhost_at \"\"' -a %s\n", fishQuote(c.path))
		}
	}
	for _, c := range cmds {
		cond := fishQuote("__ptyhost_at " + fishQuote(c.path))
		for _, f := range c.flags {
			opt := "-l " + f.name
			if len(f.name) == 1 {
				opt = "-s " + f.name
			}
			switch {
			case f.arg == "":
			case argKind(f.arg) == "file" || argKind(f.arg) == "dir":
				opt += " -r -F"
			case argKind(f.arg) == "type":
				opt += " -x -a 'HOST DOCKER SSH'"
			default:
				opt += " -x"
			}
			fmt.Fprintf(&b, "complete -c ptyhost -n %s %s -d %s\n", cond, opt, fishQuote(shorten(f.help)))
		}
		switch completionArgs[c.path] {
		case "session":
			fmt.Fprintf(&b, "complete -c ptyhost -n %s -a '(ptyhost ls -q 2>/dev/null)'\n", cond)
		case "shell":
			fmt.Fprintf(&b, "complete -c ptyhost -n %s -a 'bash zsh fish'\n", cond)
		}
	}
	return b.String()
}

// fishQuote quotes s for fish, in single quotes.
func fishQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// shorten cuts a flag's description for a completion menu: to its first
// clause, at most 60 bytes.
func shorten(s string) string {
	if i := strings.IndexAny(s, ";("); i > 0 {
		s = strings.TrimSpace(s[:i])
	}
	if len(s) > 60 {
		n := 57
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s = strings.TrimSpace(s[:n]) + "..."
	}
	return s
}
