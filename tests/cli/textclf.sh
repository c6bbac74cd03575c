#!/usr/bin/env bash
# `magpie textclf train|predict|test`: fastText and TSV input, round trip through the model file, fastText-style
# test output, determinism with one thread, and file:line errors.
. "$(dirname "$0")/lib.sh"

"$MAGPIE" --help | grep -q "textclf" || fail "textclf is not in the command list"
for sub in train predict test; do
    "$MAGPIE" textclf $sub --help | grep -q "usage: magpie textclf $sub" || fail "textclf $sub --help"
done
"$MAGPIE" textclf --help | grep -q "__label__" || fail "textclf --help explains the formats"

# Two separable classes in English and Chinese; the first half in fastText format, the second as TSV.
pos=("great product love it" "质量很好 非常喜欢" "love the color" "东西很好用" "great value really great")
neg=("bad product awful" "质量很差 讨厌" "awful color" "东西太差了" "bad value really bad")
{
    for r in 1 2 3; do
        for i in 0 1 2 3 4; do
            if [ $r -lt 3 ]; then
                printf '__label__pos %s\n__label__neg %s\n' "${pos[$i]}" "${neg[$i]}"
            else
                printf 'pos\t%s\r\nneg\t%s\n\n' "${pos[$i]}" "${neg[$i]}"
            fi
        done
    done
} > train.txt
"$MAGPIE" textclf train --input train.txt --output a.mpm --dim 16 --epochs 30 --lr 0.5 --word-ngrams 2 \
    --buckets 100000 --seed 3 2> log.txt
grep -q "read 30 examples" log.txt || { cat log.txt; fail "train log"; }
grep -q "2 labels" log.txt || { cat log.txt; fail "train log labels"; }
"$MAGPIE" textclf train --input train.txt --output b.mpm --dim 16 --epochs 30 --lr 0.5 --word-ngrams 2 \
    --buckets 100000 --seed 3 --quiet 2> log2.txt
[ ! -s log2.txt ] || fail "--quiet still logs"
cmp -s a.mpm b.mpm || fail "same seed and one thread gave different model files"
"$MAGPIE" textclf train --input train.txt --output c.mpm --dim 16 --epochs 30 --lr 0.5 --seed 4 --threads 2 \
    --minn 2 --maxn 4 --punct --quiet

# test: fastText's three lines; the training data is learnt perfectly.
"$MAGPIE" textclf test --model a.mpm --input train.txt > test.txt
printf 'N\t30\nP@1\t1.000\nR@1\t1.000\n' | cmp -s - test.txt || { cat test.txt; fail "textclf test output"; }
"$MAGPIE" textclf test --model c.mpm --input train.txt | grep -qx $'P@1\t1.000' || fail "subword model"
# Several labels per line: recall counts them all.
printf '__label__pos __label__extra great love\n__label__neg awful\n' > multi.txt
"$MAGPIE" textclf test --model a.mpm --input multi.txt > mt.txt
printf 'N\t2\nP@1\t1.000\nR@1\t0.667\n' | cmp -s - mt.txt || { cat mt.txt; fail "multi-label recall"; }
"$MAGPIE" textclf test --model a.mpm --input multi.txt --k 2 | grep -qx $'P@2\t0.500' || fail "P@2"

# predict: one output line per input line (stdin by default), leading labels ignored.
printf 'love it, great!\n__label__pos 讨厌，太差\n\nreally awful\n' | "$MAGPIE" textclf predict --model a.mpm > pred.txt
[ "$(wc -l < pred.txt)" = 4 ] || { cat pred.txt; fail "one line per input line"; }
[ "$(cut -f1 pred.txt | tr '\n' ' ')" = "pos neg pos neg " ] || { cat pred.txt; fail "predicted labels"; }
awk -F'\t' 'NR != 3 && $2 <= 0.5 { exit 1 } NR == 3 && $2 != "0.50000" { exit 1 }' pred.txt || { cat pred.txt; fail "probabilities"; }
printf 'great\n' > one.txt
"$MAGPIE" textclf predict --model a.mpm --input one.txt --k 5 > k.txt
awk -F'\t' 'NF != 4 || $1 != "pos" || $3 != "neg" { exit 1 } { s = $2 + $4; if (s < 0.999 || s > 1.001) exit 1 }' k.txt \
    || { cat k.txt; fail "--k: all labels, probabilities summing to 1"; }

# Errors: file:line for bad lines, the file for bad models, usage errors exit 2.
printf '__label__a fine\nno label or tab\n' > bad1.txt
expect_fail_code 1 "bad1.txt:2: expected" "$MAGPIE" textclf train --input bad1.txt --output x.mpm
printf '__label__a fine\n__label__ empty\n' > bad2.txt
expect_fail_code 1 "bad2.txt:2: empty label" "$MAGPIE" textclf train --input bad2.txt --output x.mpm
printf '__label__a fine\n\n__label__b bad \xff byte\n' > bad3.txt
expect_fail_code 1 "bad3.txt:3: invalid UTF-8" "$MAGPIE" textclf train --input bad3.txt --output x.mpm
printf '  \t text without label\n' > bad4.txt
expect_fail_code 1 "bad4.txt:1: empty label" "$MAGPIE" textclf test --model a.mpm --input bad4.txt
printf '__label__a one\n__label__a two\n' > one_label.txt
expect_fail_code 1 "at least 2 distinct labels" "$MAGPIE" textclf train --input one_label.txt --output x.mpm
[ ! -e x.mpm ] || fail "a failed training wrote a model"
expect_fail_code 1 "cannot open missing.txt" "$MAGPIE" textclf train --input missing.txt --output x.mpm
expect_fail_code 2 "--output MODEL is required" "$MAGPIE" textclf train --input train.txt
expect_fail_code 2 "--model MODEL is required" "$MAGPIE" textclf predict
expect_fail_code 2 "--input FILE is required" "$MAGPIE" textclf test --model a.mpm
expect_fail_code 2 "--dim" "$MAGPIE" textclf train --input train.txt --output x.mpm --dim ten
expect_fail_code 2 "--word-ngrams" "$MAGPIE" textclf train --input train.txt --output x.mpm --word-ngrams 3
expect_fail_code 2 "need 1 <= minn <= maxn" "$MAGPIE" textclf train --input train.txt --output x.mpm --maxn 6
expect_fail_code 2 "unknown subcommand" "$MAGPIE" textclf fit
head -c 300 a.mpm > cut.mpm
expect_fail_code 1 "cut.mpm" "$MAGPIE" textclf predict --model cut.mpm --input one.txt
expect_fail_code 1 "train.txt" "$MAGPIE" textclf test --model train.txt --input train.txt
printf 'ok\nbad \xc3\n' > badpred.txt
expect_fail_code 1 "badpred.txt:2: " "$MAGPIE" textclf predict --model a.mpm --input badpred.txt
echo "textclf CLI ok"
