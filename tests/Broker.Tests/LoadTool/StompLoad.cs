using System.Reflection;
using System.Text.Json;
using Broker.Load.Reporting;

namespace Broker.Tests.LoadTool;

/// <summary>What one <c>stompload run</c> gave: its exit code, the result read back from its <c>--json</c> file, and that file.</summary>
internal sealed record LoadRun(int ExitCode, LoadResult Result, string Json)
{
    public override string ToString() => $"exit code {ExitCode}, result:\n{Json}";
}

/// <summary>
/// Runs the load tool as its command line does (<c>stompload run …</c>, through its own entry point, in this process),
/// short: 0.2 s of warm-up, 1 s measured, at most 5 s of drain. Later arguments win, so a test may override these.
/// </summary>
internal static class StompLoad
{
    private static readonly MethodInfo AsyncMain = FindAsyncMain();

    /// <summary>The tool's entry point with these arguments; its exit code.</summary>
    public static async Task<int> MainAsync(params string[] args) =>
        await ((Task<int>)AsyncMain.Invoke(null, [args])!).WaitAsync(TimeSpan.FromSeconds(90));

    /// <summary><c>stompload run</c> with the short timings, <c>--quiet</c>, and the result written to a file and read back.</summary>
    public static async Task<LoadRun> RunAsync(params string[] options)
    {
        var jsonPath = Path.Combine(Path.GetTempPath(), $"stompload-test-{Guid.NewGuid():N}.json");
        try
        {
            var exitCode = await MainAsync(["run", "--duration", "1", "--warmup", "0.2", "--drain-timeout", "5", "--quiet", .. options, "--json", jsonPath]);
            Assert.True(File.Exists(jsonPath), $"stompload exited with {exitCode} and wrote no result file");
            var json = await File.ReadAllTextAsync(jsonPath);
            var result = JsonSerializer.Deserialize<LoadResult>(json, LoadResult.JsonOptions);
            Assert.NotNull(result);
            return new LoadRun(exitCode, result, json);
        }
        finally
        {
            File.Delete(jsonPath);
        }
    }

    /// <summary>Asserts a flow run delivered everything it sent exactly once and in order, and said so.</summary>
    public static void AssertDeliveredExactlyOnce(LoadRun run, long deliveriesPerMessage = 1)
    {
        var r = run.Result;
        Assert.True(r.Ok, $"the run should be ok: {run}");
        Assert.Null(r.Error);
        Assert.Equal(0, run.ExitCode);
        Assert.True(r.Sent > 0, $"nothing was sent: {run}");
        Assert.Equal(r.Sent * deliveriesPerMessage, r.Expected);
        Assert.Equal(r.Expected, r.Received);
        Assert.Equal(0, r.Lost);
        Assert.Equal(0, r.Duplicates);
        Assert.Equal(0, r.Reordered);
        Assert.True(r.SentPerSecond > 0, $"no send rate: {run}");
        Assert.True(r.ReceivedPerSecond > 0, $"no delivery rate: {run}");
    }

    // Top-level statements compile to a synchronous entry point that blocks on the async one (<Main>$). The async one
    // is called, so a run never holds a thread-pool thread that the in-process broker may need.
    private static MethodInfo FindAsyncMain()
    {
        var entryPoint = typeof(LoadResult).Assembly.EntryPoint ?? throw new InvalidOperationException("stompload has no entry point");
        if (entryPoint.ReturnType == typeof(Task<int>))
        {
            return entryPoint;
        }

        return entryPoint.DeclaringType!.GetMethods(BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic)
            .SingleOrDefault(m => m.ReturnType == typeof(Task<int>) && m.GetParameters() is [{ ParameterType: var p }] && p == typeof(string[]))
            ?? throw new InvalidOperationException($"stompload's entry point {entryPoint.Name} has no async counterpart returning Task<int>");
    }
}
