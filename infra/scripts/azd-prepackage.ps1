# azd prepackage hook (azure.yaml, Windows): the same package as azd-prepackage.sh without make.
# infra/pkgzip -build builds dist/ as `make build` does (Go cross-compiles the linux/amd64
# executable), checks it and writes build/jitaccess.zip with the jitaccess entry marked 0755:
# Windows file systems carry no Unix execute bit, and the Flex Consumption host cannot start a
# custom handler without it.
#   $env:PROFILES = path to profiles.json (azd env set PROFILES ...) or .\profiles.json
$ErrorActionPreference = 'Stop'
Set-Location (Resolve-Path (Join-Path $PSScriptRoot '..\..'))

if ($env:PROFILES -and -not (Test-Path -LiteralPath $env:PROFILES -PathType Leaf)) {
    Write-Error "PROFILES=$($env:PROFILES): no such file"
    exit 1
}
if (-not (Get-Command go -ErrorAction SilentlyContinue)) {
    Write-Error 'go not found: the package is built locally (docs/deploy.md, Prerequisites)'
    exit 1
}
& go run ./infra/pkgzip -build -dist dist -out build/jitaccess.zip
exit $LASTEXITCODE
