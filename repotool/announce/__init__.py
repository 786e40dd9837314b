"""Announcements to the list: records → signed RFC 5322 message → SMTP → archive.

::

    plaintext.py  pure: the records' Markdown as plain text, filled to 72 columns
    render.py     pure: an advisory or a release (+ media.json) → subject and text
    headers.py    pure: header lines as 7-bit bytes (RFC 2047 encoded words, folding)
    pgpmime.py    pure: the PGP/MIME (RFC 3156) message bytes around a detached signature
    outbox.py     <state>/outbox/: each message (.eml) and whether it was sent (the sent record)
    delivery.py   the SMTP transport seam and its smtplib implementation
    archive.py    public/lists/<list_name>/: archive.json, the .eml files, archive.mbox
    flow.py       the shell that joins them; the CLI is repotool/commands/announce.py

See docs/announce.md for the choices (what is signed, the sent record, media.json).
"""
