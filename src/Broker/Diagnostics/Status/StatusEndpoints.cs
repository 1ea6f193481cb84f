using System.Net;
using Broker.Security;
using Microsoft.AspNetCore.StaticFiles;
using Microsoft.Extensions.FileProviders;

namespace Broker.Diagnostics.Status;

/// <summary>
/// The web side of the status feature, on the WebSocket listener: the pages in <c>wwwroot</c> (status page at
/// <c>/</c>, <c>chat.html</c>, <c>dashboard.html</c>, with stomp.js vendored at build time) and <c>GET /api/status</c>.
/// </summary>
internal static class StatusEndpoints
{
    // The pages load only their own scripts and styles and talk only to their own origin (ws:// included).
    private const string ContentSecurityPolicy =
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        + "frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

    /// <summary>The folder the pages are served from: <c>wwwroot</c> beside the broker's assembly.</summary>
    public static string WebRoot => Path.Combine(AppContext.BaseDirectory, "wwwroot");

    public static void MapStatus(WebApplication app)
    {
        if (Directory.Exists(WebRoot))
        {
            // Beside the assembly rather than under the content root: the pages are found wherever the broker is started from.
            var files = new PhysicalFileProvider(WebRoot);
            app.Lifetime.ApplicationStopped.Register(files.Dispose);
            app.UseDefaultFiles(new DefaultFilesOptions { FileProvider = files });
            app.UseStaticFiles(new StaticFileOptions
            {
                FileProvider = files,
                ContentTypeProvider = new FileExtensionContentTypeProvider(),
                OnPrepareResponse = context =>
                {
                    var headers = context.Context.Response.Headers;
                    headers.XContentTypeOptions = "nosniff";
                    headers.CacheControl = "no-cache"; // revalidate (ETag): a new broker build is seen at once
                    if (context.File.Name.EndsWith(".html", StringComparison.Ordinal))
                    {
                        headers.ContentSecurityPolicy = ContentSecurityPolicy;
                        headers["Referrer-Policy"] = "no-referrer";
                    }
                },
            });
        }

        app.MapGet("/api/status", async (HttpContext context, StatusPublisher publisher, Authenticator authenticator) =>
        {
            // Destination names and figures are for operators: anyone may read them on a broker that lets anyone in,
            // otherwise only from the broker's own machine (the STOMP topic, with its read permissions, serves the rest).
            if (!authenticator.AnonymousAllowed && !IsLoopback(context.Connection.RemoteIpAddress))
            {
                context.Response.StatusCode = StatusCodes.Status403Forbidden;
                await context.Response.WriteAsync(
                    "/api/status answers loopback clients only while the broker requires authentication; subscribe to "
                    + StatusPublisher.Topic + " over STOMP instead.");
                return;
            }

            context.Response.ContentType = "application/json";
            context.Response.Headers.CacheControl = "no-store";
            await context.Response.Body.WriteAsync(publisher.Latest);
        });
    }

    private static bool IsLoopback(IPAddress? address) =>
        address is not null && IPAddress.IsLoopback(address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address);
}
