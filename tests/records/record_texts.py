"""Record texts shared by the records tests: a valid advisory and a release with a respin.

Used by tests/records/test_records.py and tests/records/test_records_screening.py.
"""

from __future__ import annotations

GOOD = """\
---
id: PSSA-2014-0007
type: security
severity: Important
title: A flaw
issued: 2014-03-01
updated: 2014-03-02
cves: [CVE-2014-1234]
references:
  - url: https://example.org/advisory
    title: upstream
packages:
  el7:
    - name: perfsonar-toolkit-ntp
      evr: 3.3.2-1.el7
affected_releases: ["3.3.1"]
fixed_in: "3.3.2"
---
## Description

Something.

## Impact

Bad.

## Remediation

yum update
"""

RELEASE = """\
---
version: "3.3.2"
date: 2014-01-28
advisories: [PSSA-2014-0007]
respins:
  - version: 3.3.2-2
    date: 2014-04-10
---
Notes.
"""
