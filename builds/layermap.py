"""Which history entry of an image made which of its layers, decided from the Engine API's answers alone.

The image config says it exactly (each history entry's `empty_layer`), but engine 20.10's API does not give the
config: `GET /images/{id}/history` gives each entry's instruction (CreatedBy), Comment and Size, and inspect the
layers' diff_ids (RootFS.Layers). Size is the bytes of the files the entry's layer holds (moby's DiffSize: folders,
whiteouts and empty files count nothing) and 0 for an entry that made no layer, so a size says "a layer" but a 0
says nothing by itself. Measured on engine 20.10 (README, "The image page"):

    entry                                    classic builder                   BuildKit
    Size > 0                                 a layer                           a layer
    RUN mkdir /x, COPY of an empty folder,   a layer, Size 0                   a layer, Size 0
      RUN rm, RUN touch, WORKDIR /new
    RUN true, WORKDIR /existing              no layer (an empty diff is        a layer, Size 0 (even one
                                               not committed)                    whose diff is empty)
    WORKDIR /                                no layer                          no layer
    ENV, LABEL, ARG, CMD, USER, EXPOSE,      no layer (`/bin/sh -c #(nop) ENV  no layer (`ENV A=1`, Comment
      VOLUME, ...                              A=1`)                             buildkit.dockerfile.v0)

So each entry is a LAYER (it has bytes), NO_LAYER (an instruction that only changes the config) or EITHER (a
zero-size entry of an instruction that may commit files), and `settle` gives the EITHER entries the layers the
count leaves: exact whenever only one way to do so exists (every EITHER a layer, or none). Where more than one
does (a classic `RUN true` or `WORKDIR /existing` beside a `RUN mkdir`), more facts are needed: the count of
layers through an entry, which the classic builder's intermediate images give (builds/services/images.py asks
the engine), or the config itself (read from `docker save`, which costs an export of the image). Nothing is
guessed: an entry `settle` cannot decide stays open for the caller.

BuildKit's zero-size RUN, COPY, ADD and WORKDIR entries are EITHER too, although engine 20.10 always makes them a
layer: another engine's exporter may drop an empty one, and an EITHER keeps the truth among the answers `settle`
weighs, so it can be open but never wrong.

One limit, of the classic builder's words: a config-only entry is known by `#(nop) <INSTRUCTION>` in its text,
so a zero-size RUN whose own command holds such words (`RUN echo "#(nop) ENV"` that writes no bytes) is taken
for that instruction.
"""

from __future__ import annotations

import enum
import re

from builds.constants import COMMITTING_INSTRUCTIONS

# The Comment BuildKit's Dockerfile frontend puts on every history entry it makes.
BUILDKIT_COMMENT = "buildkit.dockerfile.v0"
# The classic builder's config-only entries: the shell, then `#(nop) ` and the instruction (`/bin/sh -c #(nop)
# ENV A=1`, `/bin/sh -c #(nop) COPY file:3a4b… in /app`).
_CLASSIC_NOP = re.compile(r"(?:^|\s)#\(nop\)\s+([A-Z]+)(?:\s|$)")


class Makes(enum.Enum):
    """What a history entry made, as far as its own fields tell."""

    LAYER = "layer"
    NO_LAYER = "no layer"
    EITHER = "either"


def entry_makes(created_by: str, comment: str, size: int) -> Makes:
    """What the history entry made, from its instruction, its Comment and its Size (see the module's table)."""
    if size > 0:
        return Makes.LAYER
    if comment == BUILDKIT_COMMENT:
        words = created_by.split()
        keyword = words[0].upper() if words else ""
        if keyword == "WORKDIR" and words[1:] == ["/"]:
            # The frontend makes the folder with a layer, except for the root, which is always there.
            return Makes.NO_LAYER
        return Makes.EITHER if keyword in COMMITTING_INSTRUCTIONS else Makes.NO_LAYER
    nop = _CLASSIC_NOP.search(created_by) if "\n" not in created_by else None
    if nop is not None:
        return Makes.EITHER if nop.group(1) in COMMITTING_INSTRUCTIONS else Makes.NO_LAYER
    # A RUN of the classic builder (`/bin/sh -c mkdir /x`, `|1 A=1 /bin/sh -c ...`, exec form `mkdir /x`), an
    # import, or another tool's entry: a zero size may be a layer.
    return Makes.EITHER


def settle(makes: list[Makes], layer_count: int,
           counts_through: dict[int, int] | None = None) -> list[bool | None] | None:
    """For each entry (oldest first), True when it made a layer, False when it made none, None when the facts
    leave both open; None for the whole when no assignment fits them (the history does not account for the
    layers, or a fact contradicts another).

    The facts: what each entry makes, that the image has `layer_count` layers, and `counts_through` {entry index:
    the number of layers up to and including that entry}. An entry is decided when every assignment of the
    layers that fits the facts agrees on it, so when all are decided there is exactly one."""
    counts_through = counts_through or {}
    entries = len(makes)

    def allowed(index: int, before: int, take: int) -> bool:
        kind = makes[index]
        if (take and kind is Makes.NO_LAYER) or (not take and kind is Makes.LAYER):
            return False
        after = before + take
        return after <= layer_count and counts_through.get(index, after) == after

    # reachable[i]: the layer counts that the entries before entry i can add up to.
    reachable: list[set[int]] = [{0}] + [set() for _ in range(entries)]
    for index in range(entries):
        reachable[index + 1] = {before + take for before in reachable[index] for take in (0, 1)
                                if allowed(index, before, take)}
    if layer_count not in reachable[entries]:
        return None
    # finishing[i]: the counts before entry i from which the remaining entries can reach layer_count.
    finishing: list[set[int]] = [set() for _ in range(entries)] + [{layer_count}]
    for index in reversed(range(entries)):
        finishing[index] = {before for before in reachable[index] for take in (0, 1)
                            if allowed(index, before, take) and before + take in finishing[index + 1]}
    decided: list[bool | None] = []
    for index in range(entries):
        options = {take for before in finishing[index] for take in (0, 1)
                   if allowed(index, before, take) and before + take in finishing[index + 1]}
        decided.append(True if options == {1} else False if options == {0} else None)
    return decided


def is_settled(decided: list[bool | None] | None) -> bool:
    return decided is not None and None not in decided


def from_config(config: dict, entries: int, layer_count: int) -> list[bool] | None:
    """Each history entry's layer, as the image config's `history` says (`empty_layer`); None when it does not
    account for the layers (an image made by a tool that wrote no history, or less)."""
    history = config.get("history") if isinstance(config, dict) else None
    if not isinstance(history, list) or len(history) != entries:
        return None
    made = [not (isinstance(entry, dict) and entry.get("empty_layer")) for entry in history]
    return made if made.count(True) == layer_count else None
