"use client";
import { PlatformAdmins, Teams } from "@/src/ui/platform";
import { Shell } from "@/src/ui/shell";

export default function PlatformPage() {
  return (
    <Shell>
      <h1>Platform</h1>
      <Teams />
      <PlatformAdmins />
    </Shell>
  );
}
