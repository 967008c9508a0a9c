from imaging_biobank.cli import main

main()
