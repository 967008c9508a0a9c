"""Image analysis: segmentations, registrations, radiomics, harmonisation, structured reports."""
