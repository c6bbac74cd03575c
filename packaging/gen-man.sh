#!/bin/sh
# packaging/gen-man.sh BIN VERSION OUTDIR: writes the man pages OUTDIR/magpie.1 and OUTDIR/magpie-COMMAND.1, one
# per command that `BIN --help` lists, each made from that command's own `--help` text, so a page says exactly
# what --help says (the Makefile runs it on the built binary; `make man`, `make install`).
#
# The help texts follow the CLI's conventions (src/cli/cli.h): a "usage:" block first (the SYNOPSIS), then
# paragraphs; a line "name:" or "name (...):" at the start of a block, followed by indented lines, starts a
# section; indented lines (option tables, examples) stay as they are (no filling), other text is filled.
set -eu
[ $# -eq 3 ] || { echo "usage: gen-man.sh BIN VERSION OUTDIR" >&2; exit 2; }
bin=$1 version=$2 out=$3
mkdir -p "$out"
top=$out/.magpie.help
"$bin" --help >"$top"
# the command table of `magpie --help`: "commands:" then "  NAME  summary" lines up to a blank line
commands=$(awk '/^commands:$/ { on = 1; next } on && /^$/ { exit } on && /^  [a-z]/ { print $1 }' "$top")
[ -n "$commands" ] || { echo "gen-man.sh: \`$bin --help\` lists no commands" >&2; exit 1; }

# to_roff NAME SUMMARY SEE_ALSO < help text > page
to_roff() {
    awk -v name="$1" -v summary="$2" -v see="$3" -v version="$version" '
    function esc(s) {
        gsub(/\\/, "\\e", s)
        gsub(/-/, "\\-", s)
        if (s ~ /^[.\047]/) s = "\\&" s
        return s
    }
    function nf_on() { if (!nf) { print ".nf"; nf = 1 } }
    function nf_off() { if (nf) { print ".fi"; nf = 0 } }
    { line[NR] = $0 }
    END {
        title = toupper(name)
        printf ".TH %s 1 \"\" \"magpie %s\" \"Magpie manual\"\n", esc(title), version
        print ".nh"
        print ".ad l"
        print ".SH NAME"
        print esc(name) " \\- " esc(summary)
        i = 1
        if (line[1] ~ /^usage: /) {
            print ".SH SYNOPSIS"
            print ".nf"
            for (; i <= NR && line[i] != ""; i++) {
                s = line[i]
                if (i == 1) sub(/^usage: /, "", s)
                else sub(/^       /, "", s)
                print esc(s)
            }
            print ".fi"
        }
        print ".SH DESCRIPTION"
        nf = 0
        blank = 1
        for (; i <= NR; i++) {
            s = line[i]
            if (s == "") {
                nf_off()
                if (!blank) print ".PP"
                blank = 1
                continue
            }
            if (blank && s ~ /^[A-Za-z][^ ].*:$/ && length(s) <= 100 && line[i + 1] ~ /^ /) {
                h = s
                sub(/ \(.*$/, "", h)
                sub(/:$/, "", h)
                print ".SH " esc(toupper(h))
                if (h ":" != s) { sub(/:$/, "", s); print esc(s) }
                blank = 0
                continue
            }
            if (s ~ /^ /) nf_on()
            else nf_off()
            print esc(s)
            blank = 0
        }
        nf_off()
        if (see != "") {
            print ".SH SEE ALSO"
            print esc(see)
        }
    }'
}

summary=$(awk '/^Magpie: / { sub(/^Magpie: /, ""); sub(/\.$/, ""); print; exit }' "$top")
see=""
for c in $commands; do see="$see${see:+, }magpie-$c(1)"; done
to_roff magpie "${summary:-a self-hosted recommendation engine}" "$see" <"$top" >"$out/magpie.1.tmp"
for c in $commands; do
    s=$(awk -v c="$c" 'on && $1 == c { $1 = ""; sub(/^ +/, ""); print; exit } /^commands:$/ { on = 1 }' "$top")
    "$bin" "$c" --help >"$out/.$c.help"
    to_roff "magpie-$c" "$s" "magpie(1)" <"$out/.$c.help" >"$out/magpie-$c.1"
    rm -f "$out/.$c.help"
done
rm -f "$top"
# magpie.1 last: the Makefile's target for the whole set
mv "$out/magpie.1.tmp" "$out/magpie.1"
