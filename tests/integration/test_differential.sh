#!/usr/bin/env bash
# placeholder: replaced by the real test
echo 1..1
echo "not ok 1 - test_differential.sh is not written yet"
exit 1
