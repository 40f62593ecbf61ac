"""pydantic models of FineTuneRelease, the revision digest, CRD generation, validation messages."""
