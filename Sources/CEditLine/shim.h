// libedit (BSD line editing: arrow keys, Ctrl-A/E/W, history) through its readline-compatible
// API, for `hymba-edge chat`. readline.h uses FILE without including stdio.h.
#include <stdio.h>
#include <editline/readline.h>
