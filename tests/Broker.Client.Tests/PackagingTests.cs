using System.Diagnostics;
using System.IO.Compression;
using System.Xml.Linq;
using Broker.Tests.Infrastructure;

namespace Broker.Client.Tests;

/// <summary><c>dotnet pack</c> of the client (from the build these tests ran on) gives a package with its metadata, readme and docs.</summary>
public sealed class PackagingTests
{
    [Fact]
    public async Task Pack_produces_a_package_with_metadata_readme_and_xml_docs()
    {
        var output = Directory.CreateTempSubdirectory("stompbroker-pack-");
        try
        {
            // The configuration these tests were built in (bin/Debug/... or bin/Release/...), so --no-build finds the DLL.
            var configuration = AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Release{Path.DirectorySeparatorChar}", StringComparison.Ordinal) ? "Release" : "Debug";
            var project = Path.Combine(ExternalClient.RepositoryRoot, "src", "Broker.Client", "Broker.Client.csproj");
            var (exitCode, log) = await RunAsync(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet", "pack", project, "--no-build", "-c", configuration, "-o", output.FullName);
            Assert.True(exitCode == 0, log);

            var package = Assert.Single(output.GetFiles("*.nupkg"));
            Assert.Equal("StompBroker.Client.0.1.0.nupkg", package.Name);
            using var zip = ZipFile.OpenRead(package.FullName);
            var entries = zip.Entries.Select(e => e.FullName).ToList();
            Assert.Contains("README.md", entries);
            Assert.Contains("lib/net10.0/Broker.Client.dll", entries);
            Assert.Contains("lib/net10.0/Broker.Client.xml", entries);

            using var nuspecStream = zip.GetEntry("StompBroker.Client.nuspec")!.Open();
            var metadata = XDocument.Load(nuspecStream).Root!.Elements().Single(e => e.Name.LocalName == "metadata");
            string? Field(string name) => metadata.Elements().SingleOrDefault(e => e.Name.LocalName == name)?.Value;
            Assert.Equal("StompBroker.Client", Field("id"));
            Assert.Equal("0.1.0", Field("version"));
            Assert.Equal("README.md", Field("readme"));
            Assert.Equal("StompBroker contributors", Field("authors"));
            Assert.Contains("STOMP 1.2 client", Field("description"), StringComparison.Ordinal);
            Assert.Contains("stomp", Field("tags"), StringComparison.Ordinal);
            var dependencies = metadata.Descendants().Where(e => e.Name.LocalName == "dependency").Select(e => e.Attribute("id")!.Value).ToList();
            Assert.Contains("Microsoft.Extensions.Logging.Abstractions", dependencies);
            Assert.Contains("Microsoft.Extensions.Hosting.Abstractions", dependencies);
        }
        finally
        {
            output.Delete(recursive: true);
        }
    }

    private static async Task<(int ExitCode, string Log)> RunAsync(string program, params string[] args)
    {
        var info = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await stdout + await stderr);
    }
}
