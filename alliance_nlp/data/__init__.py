"""Development corpora (AnnoMI, ESConv) and our standoff alliance-marker annotations."""
