module pga.local/pause

go 1.22
