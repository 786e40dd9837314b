"""Mirrors: syncing a published repository safely, checking the mirror network
and steering hosts to fresh mirrors.

The seams:

* :mod:`repotool.mirror.sync_plan` (pure): repomd.xml/primary parsing, what to
  fetch, reuse and delete, rollback and freeze decisions;
  :mod:`repotool.mirror.metadata_values` (pure) checks each value it reads.
* :mod:`repotool.mirror.fetch`: bounded HTTP over urllib3 (length limit,
  timeouts, minimum rate, Range resume) behind the
  :class:`~repotool.mirror.fetch.Fetcher` seam; :mod:`repotool.mirror.memory_fetch`
  is its in-memory fake; :mod:`repotool.mirror.partial` is the partial file both
  resume from.
* :mod:`repotool.mirror.signature`: ``gpgv`` against the pinned key.
* :mod:`repotool.mirror.generations`: the generation folders behind DEST: the
  lock, the held generation, hard links into staging, the atomic swap.
* :mod:`repotool.mirror.staging`: verified, bounded, resumed parallel downloads
  into staging (``StagingDownloader``), shared by both syncs.
* :mod:`repotool.mirror.sync`: the shell: the signed repomd.xml, staging, then the swap.
* :mod:`repotool.mirror.media_plan` (pure) and :mod:`repotool.mirror.media`
  (shell, with the same downloads and generations): the release media, SHA256SUMS signed.
* :mod:`repotool.mirror.network`: ``mirror/mirrors.toml`` as typed data.
* :mod:`repotool.mirror.health`: fresh/stale/down/bad-signature per mirror.
* :mod:`repotool.mirror.metalink` (pure) and :mod:`repotool.mirror.lists`
  (shell): the yum mirrorlist and metalink in ``public/``.
"""
