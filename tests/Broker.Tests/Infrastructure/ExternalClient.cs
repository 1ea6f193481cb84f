using System.Diagnostics;
using System.Text.Json;

namespace Broker.Tests.Infrastructure;

/// <summary>
/// Runs a real third-party STOMP client (stomp.js in Node, stomp.py in Debian's Python) as a child process on one
/// scenario script and reports its verdict: one JSON line {"ok":…,"error":…} and the exit code.
/// </summary>
public static class ExternalClient
{
    /// <summary>The repository root (where StompBroker.sln is), found from the test binaries' folder.</summary>
    public static string RepositoryRoot { get; } = FindRepositoryRoot();

    public static string InteropFolder => Path.Combine(RepositoryRoot, "tests", "interop");

    /// <summary>Debian's interpreter, which is the one python3-stomp installs into (not a pyenv python on PATH).</summary>
    public const string SystemPython = "/usr/bin/python3";

    public static async Task RunStompJsAsync(Uri webSocketUri, string scenario, params string[] extra)
    {
        var modules = Path.Combine(InteropFolder, "node_modules", "@stomp", "stompjs");
        Assert.True(Directory.Exists(modules), $"{modules} is missing: tests/run.sh installs it with npm ci from tests/interop/package-lock.json");
        await RunAsync("node", [Path.Combine(InteropFolder, "stompjs-scenarios.mjs"), "--url", webSocketUri.ToString(), "--scenario", scenario, "--prefix", Prefix(), .. extra]);
    }

    public static async Task RunStompPyAsync(int tcpPort, string scenario, params string[] extra)
    {
        Assert.True(File.Exists(SystemPython), $"{SystemPython} is missing: tests/run.sh installs python3-stomp");
        await RunAsync(SystemPython, [Path.Combine(InteropFolder, "stomppy_scenarios.py"), "--host", "127.0.0.1", "--port", tcpPort.ToString(System.Globalization.CultureInfo.InvariantCulture), "--scenario", scenario, "--prefix", Prefix(), .. extra]);
    }

    /// <summary>Debian's Chromium, which the browser scenarios drive with playwright-core (no browser download).</summary>
    public const string Chromium = "/usr/bin/chromium";

    /// <summary>Where the browser scenarios save their screenshots: beside the test results tests/run.sh collects.</summary>
    public static string ScreenshotsFolder => Path.Combine(RepositoryRoot, "artifacts", "test-results", "screenshots");

    /// <summary>
    /// Runs a browser scenario (tests/interop/browser-scenarios.mjs: chat, status, dashboard) in headless Chromium against
    /// the pages the broker serves at <paramref name="baseUri"/>, saving its screenshots into <paramref name="screenshots"/>.
    /// </summary>
    public static async Task RunBrowserAsync(Uri baseUri, string scenario, string screenshots)
    {
        ArgumentNullException.ThrowIfNull(baseUri);
        Assert.True(File.Exists(Chromium), $"{Chromium} is missing: tests/run.sh installs Debian's chromium package");
        var modules = Path.Combine(InteropFolder, "node_modules", "playwright-core");
        Assert.True(Directory.Exists(modules), $"{modules} is missing: tests/run.sh installs it with npm ci from tests/interop/package-lock.json");
        await RunAsync("node", [Path.Combine(InteropFolder, "browser-scenarios.mjs"), "--base", baseUri.GetLeftPart(UriPartial.Authority), "--scenario", scenario, "--screenshots", screenshots, "--prefix", Prefix(), "--chromium", Chromium]);
    }

    private static string Prefix() => "it-" + Guid.NewGuid().ToString("N")[..12];

    private static async Task RunAsync(string program, string[] args)
    {
        var info = new ProcessStartInfo(program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = InteropFolder,
        };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        using var process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {program}");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"{program} {string.Join(' ', args)} did not finish in 90 s; stderr: {await stderr}");
        }

        var output = await stdout;
        var verdict = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).LastOrDefault() ?? "";
        var detail = $"{Path.GetFileName(args[0])} {string.Join(' ', args[1..])}\nstdout: {output}\nstderr: {await stderr}";
        Assert.True(process.ExitCode == 0, $"exit code {process.ExitCode}\n{detail}");
        using var json = JsonDocument.Parse(verdict);
        Assert.True(json.RootElement.GetProperty("ok").GetBoolean(), detail);
    }

    private static string FindRepositoryRoot()
    {
        for (var folder = new DirectoryInfo(AppContext.BaseDirectory); folder is not null; folder = folder.Parent)
        {
            if (File.Exists(Path.Combine(folder.FullName, "StompBroker.sln")))
            {
                return folder.FullName;
            }
        }

        throw new InvalidOperationException("StompBroker.sln not found above " + AppContext.BaseDirectory);
    }
}
